"""Start page: what EduTune does and the four steps, with links."""

import streamlit as st

from pages._ui import t

st.title(t("home.title"))
st.write(t("home.intro"))

for number, (page, key) in enumerate([("pages/data.py", "data"), ("pages/train.py", "train"),
                                      ("pages/results.py", "results"), ("pages/predict.py", "predict")], start=1):
    st.page_link(page, label=f"{number}. {t(f'home.step.{key}')}")

st.caption(t("home.privacy"))
