"""EduTune's engine: data loading, training, evaluation and prediction, with no web interface."""

import os

# Hugging Face tokenizers start a thread pool of their own; inside a web server that
# forks or runs jobs in threads this can deadlock, so EduTune turns it off unless the
# user set it.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
