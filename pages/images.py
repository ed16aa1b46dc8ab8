"""Images page: upload labelled images, pick a torchvision model and augmentation, train and watch."""

from pathlib import Path

import pandas as pd
import streamlit as st

from edutune_core.config import TrainConfig
from edutune_core.data import MAX_FILE_BYTES, load_table
from edutune_core.i18n import EduTuneError
from edutune_core.images import (
    ARCHITECTURES,
    Augmentation,
    ImageSet,
    image_folder,
    image_mapping,
    load_class_folders,
    load_labelled_images,
    propose_label_columns,
    weights_file,
    zip_image_names,
)
from edutune_core.runner import create_run
from edutune_core.tasks import IMAGE_CLASSIFICATION
from pages.common.live import run_panel
from pages.common.ui import (config_is_valid, forget_widget_state, keep_widget_state, manager, option_labels,
                             setup_page, show_error, store, t)

FOLDERS, TABLE = "folders", "table"
SOURCES = (FOLDERS, TABLE)
IMAGE_SIZES = (32, 64, 96, 128, 160, 224, 256, 320)
LISTED_FILES = 50
DEFAULTS = {"images_model": "resnet18", "images_size": 224, "images_rotation": Augmentation.rotation,
            "images_crop": Augmentation.crop, "images_contrast": Augmentation.contrast,
            "images_perspective": Augmentation.perspective, "images_learning_rate": 1e-3, "images_epochs": 10,
            "images_batch_size": 16, "images_seed": 42, "images_validation_share": 0.2}


@st.cache_data(show_spinner=False, max_entries=4)
def unpack_folders(data: bytes, file_name: str, home: str) -> ImageSet:
    return load_class_folders(data, file_name, image_folder(Path(home), data))


@st.cache_data(show_spinner=False, max_entries=4)
def unpack_with_table(data: bytes, file_name: str, labels: pd.DataFrame, labels_name: str, file_column: str,
                      label_column: str, home: str) -> ImageSet:
    return load_labelled_images(data, file_name, labels, labels_name, image_folder(Path(home), data),
                                file_column, label_column)


def choose_images() -> tuple[ImageSet, str] | None:
    """Draw the uploads and return the unpacked images and the zip's name, or None until both are there."""
    source = st.radio(t("images.source"), SOURCES, format_func=option_labels("images.source", SOURCES),
                      horizontal=True, key="images_source")
    uploaded = st.file_uploader(t("images.upload_zip"), type=["zip"], key="images_zip",
                                help=t(f"images.upload_zip_help_{source}"))
    labels = None
    if source == TABLE:
        labels = st.file_uploader(t("images.upload_labels"), type=["csv", "tsv", "txt", "xlsx", "xls"],
                                  key="images_labels", help=t("images.upload_labels_help"))
    if uploaded is None:
        st.info(t("images.no_upload"))
        return None
    data = uploaded.getvalue()
    home = str(store().home)
    if source == FOLDERS:
        return unpack_folders(data, uploaded.name, home), uploaded.name
    if labels is None:
        st.info(t("images.no_labels"))
        return None
    table = load_table(labels.getvalue(), labels.name).frame
    file_column, label_column = label_columns(table, zip_image_names(data, uploaded.name))
    return unpack_with_table(data, uploaded.name, table, labels.name, file_column, label_column, home), uploaded.name


def label_columns(table: pd.DataFrame, image_names: list[str]) -> tuple[str, str]:
    proposed_file, proposed_label = propose_label_columns(table, image_names)
    columns = list(table.columns)
    left, right = st.columns(2)
    file_column = left.selectbox(t("images.file_column"), columns, key="images_file_column",
                                 **first_draw_index("images_file_column", columns, proposed_file))
    label_column = right.selectbox(t("images.label_column"), columns, key="images_label_column",
                                   **first_draw_index("images_label_column", columns, proposed_label))
    return file_column, label_column


def first_draw_index(key: str, options: list, proposed: object) -> dict:
    """Propose an option only on first draw; later the widget's own state decides."""
    if key in st.session_state and st.session_state[key] in options:
        return {}
    forget_widget_state(key)
    return {"index": options.index(proposed) if proposed in options else 0}


def show_image_set(images: ImageSet) -> None:
    counts = images.class_counts()
    st.success(t("images.found", images=len(images.frame), classes=len(counts)))
    st.dataframe(pd.DataFrame({t("images.class"): list(counts), t("images.count"): list(counts.values())}),
                 hide_index=True)
    for key, names in (("images.unreadable", images.unreadable), ("images.unlabelled", images.unlabelled),
                       ("images.missing", images.missing)):
        if not names:
            continue
        st.warning(t(key, count=len(names)))
        with st.expander(t("images.file_list")):
            st.code("\n".join(names[:LISTED_FILES]) + ("\n…" if len(names) > LISTED_FILES else ""), language=None)


def model_choice() -> str:
    architecture = st.selectbox(t("images.model"), list(ARCHITECTURES), key="images_model",
                                format_func=option_labels("images.model", ARCHITECTURES), help=t("images.model_help"))
    weights = weights_file(architecture)
    if weights.is_file():
        st.caption(t("images.weights_cached", file=str(weights)))
    else:
        st.warning(t("images.weights_missing", file=weights.name, folder=str(weights.parent)))
    return architecture


def augmentation_form() -> Augmentation:
    st.markdown(f"**{t('images.augmentation')}**", help=t("images.augmentation_help"))
    cells = st.columns(4)
    rotation = cells[0].slider(t("images.rotation"), 0.0, 20.0, step=1.0, key="images_rotation",
                               help=t("images.rotation_help"))
    crop = cells[1].slider(t("images.crop"), 0.5, 1.0, step=0.05, key="images_crop", help=t("images.crop_help"))
    contrast = cells[2].slider(t("images.contrast"), 0.0, 0.6, step=0.05, key="images_contrast",
                               help=t("images.contrast_help"))
    perspective = cells[3].slider(t("images.perspective"), 0.0, 0.5, step=0.05, key="images_perspective",
                                  help=t("images.perspective_help"))
    return Augmentation(rotation=rotation, crop=crop, contrast=contrast, perspective=perspective)


def settings_form() -> TrainConfig:
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    architecture = model_choice()
    augmentation = augmentation_form()
    cells = st.columns(3)
    # The fields have no min or max: Streamlit would silently keep the old value for a
    # number outside them, while TrainConfig's checks name the value and the range.
    learning_rate = cells[0].number_input(t("train.learning_rate"), format="%.1e", step=1e-4,
                                          key="images_learning_rate", help=t("images.learning_rate_help"))
    epochs = cells[1].number_input(t("train.epochs"), step=1, key="images_epochs", help=t("images.epochs_help"))
    batch_size = cells[2].number_input(t("train.batch_size"), step=1, key="images_batch_size",
                                       help=t("images.batch_size_help"))
    cells = st.columns(3)
    image_size = cells[0].selectbox(t("images.image_size"), IMAGE_SIZES, key="images_size",
                                    help=t("images.image_size_help"))
    seed = cells[1].number_input(t("train.seed"), step=1, key="images_seed", help=t("train.seed_help"))
    share = cells[2].slider(t("train.validation_share"), 0.05, 0.5, step=0.05, key="images_validation_share",
                            help=t("images.validation_share_help"))
    return TrainConfig.for_task(False, model=architecture, learning_rate=float(learning_rate), epochs=int(epochs),
                                batch_size=int(batch_size), seed=int(seed), validation_share=float(share),
                                image_size=int(image_size), augmentation=augmentation.to_dict())


def start_run(images: ImageSet, zip_name: str, config: TrainConfig) -> None:
    try:
        record = create_run(store(), images.frame, image_mapping(), config, data_name=zip_name,
                            extra_summary=images.summary())
    except EduTuneError as error:
        show_error(error)
        return
    manager().submit(record.run_id)
    st.session_state["images_run_id"] = record.run_id
    st.session_state["run_id"] = record.run_id
    st.rerun()


def current_image_run() -> str | None:
    """Return this session's last image run, else the newest image run in the store."""
    runs = [record for record in store().list_runs() if record.task == IMAGE_CLASSIFICATION]
    chosen = st.session_state.get("images_run_id")
    if any(record.run_id == chosen for record in runs):
        return chosen
    return runs[0].run_id if runs else None


keep_widget_state("images_source", "images_file_column", "images_label_column", *DEFAULTS)
setup_page("nav.images")
st.title(t("images.title"))
st.caption(t("images.intro"))
try:
    chosen = choose_images()
except EduTuneError as error:
    show_error(error)
    chosen = None
if chosen is not None:
    image_set, zip_name = chosen
    show_image_set(image_set)
    st.subheader(t("images.settings"))
    with st.container(border=True):
        train_config = settings_form()
        # Problems show as soon as a value is typed, and Start waits until there are none.
        valid = config_is_valid(train_config)
        if st.button(t("train.start"), type="primary", key="images_start", disabled=not valid):
            start_run(image_set, zip_name, train_config)

run_id = current_image_run()
if run_id is not None:
    st.subheader(t("train.current_run"))
    run_panel(run_id)
    if not store().get_run(run_id).is_active:
        st.page_link("pages/predict.py", label=t("nav.predict"), icon=":material/edit_note:")
        st.page_link("pages/results.py", label=t("train.see_results"), icon=":material/insights:")
