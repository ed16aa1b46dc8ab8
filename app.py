"""EduTune web app: the home page. The other pages are the scripts in ``pages/``."""

import streamlit as st

from pages.common.ui import setup_page, t

setup_page("nav.home")
st.title(t("home.title"))
st.write(t("home.intro"))

steps = [("pages/data.py", "data"), ("pages/train.py", "train"), ("pages/results.py", "results"),
         ("pages/predict.py", "predict")]
for number, (page, key) in enumerate(steps, start=1):
    st.page_link(page, label=f"{number}. {t(f'home.step.{key}')}")

st.caption(t("home.privacy"))
