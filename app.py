"""EduTune web app: page setup, language and navigation. Each page lives in ``pages/``."""

import streamlit as st

from pages._ui import language_switch, t

st.set_page_config(page_title="EduTune", page_icon="🎓", layout="wide")
language_switch()

navigation = st.navigation([
    st.Page("pages/home.py", title=t("nav.home"), icon="🏠", default=True),
    st.Page("pages/data.py", title=t("nav.data"), icon="📄", url_path="data"),
    st.Page("pages/train.py", title=t("nav.train"), icon="🏋️", url_path="train"),
    st.Page("pages/results.py", title=t("nav.results"), icon="📊", url_path="results"),
    st.Page("pages/predict.py", title=t("nav.predict"), icon="✍️", url_path="predict"),
    st.Page("pages/history.py", title=t("nav.history"), icon="🗂️", url_path="history"),
])
navigation.run()
