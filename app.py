"""EduTune web app: the home page, with a one-click demo. The other pages are in ``pages/``."""

import streamlit as st

from edutune_core.demo import DEMOS, example_text, start_demo
from pages.common.ui import manager, option_labels, setup_page, store, t

setup_page("nav.home")
st.title(t("home.title"))
st.write(t("home.intro"))

steps = [("pages/data.py", "data"), ("pages/train.py", "train"), ("pages/results.py", "results"),
         ("pages/predict.py", "predict")]
for number, (page, key) in enumerate(steps, start=1):
    st.page_link(page, label=f"{number}. {t(f'home.step.{key}')}")

with st.container(border=True):
    st.subheader(t("demo.title"))
    st.write(t("demo.intro"))
    demo = st.radio(t("demo.choose"), list(DEMOS), format_func=option_labels("demo.sample", DEMOS),
                    key="demo_choice")
    if st.button(t("demo.start"), type="primary", key="demo_start"):
        record, dataset = start_demo(store(), demo)
        manager().submit(record.run_id)
        st.session_state.update({"dataset": dataset, "run_id": record.run_id, "predict_text": example_text(demo)})
        st.switch_page("pages/train.py")

st.caption(t("home.privacy"))
