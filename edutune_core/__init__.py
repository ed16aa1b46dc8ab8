"""EduTune's engine: data loading, training, evaluation and prediction, with no web interface."""

import os

# Hugging Face tokenizers start a thread pool of their own; inside a web server that
# forks or runs jobs in threads this can deadlock, so EduTune turns it off unless the
# user set it.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# huggingface_hub sends usage telemetry with some requests; EduTune sends none unless
# the user sets this variable to 0.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# EDUTUNE_OFFLINE=1 stops every model download. huggingface_hub and transformers read
# these variables when they are first imported, so the switch works where this package
# is imported before them, as in app.py and the command line.
OFFLINE_ENV = "EDUTUNE_OFFLINE"
if os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
