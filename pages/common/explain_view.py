"""The "why this prediction" view of the Predict page: highlighted text or feature effects."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from edutune_core.explain import Explanation, explain_row, explain_text
from edutune_core.i18n import EduTuneError
from edutune_core.predict import Predictor
from edutune_core.threshold import default_at_risk_label
from pages.common.evaluation_charts import bars_figure
from pages.common.ui import show_error, t

_UP_COLOR = (46, 125, 50)
_DOWN_COLOR = (198, 40, 40)
TOP_PARTS = 8


def highlighted_html(text: str, parts: pd.DataFrame) -> str:
    """Return ``text`` as HTML with each part shaded green (pushed the output up) or red (down)."""
    scale = float(np.nanmax(np.abs(parts["effect"]))) if len(parts) else 0.0
    pieces, cursor = [], 0
    for start, end, effect in parts[["start", "end", "effect"]].itertuples(index=False):
        pieces.append(html.escape(text[cursor:start]))
        strength = 0.0 if not scale or np.isnan(effect) else abs(effect) / scale
        red, green, blue = _UP_COLOR if effect >= 0 else _DOWN_COLOR
        pieces.append(f'<span style="background: rgba({red}, {green}, {blue}, {0.08 + 0.55 * strength:.2f})" '
                      f'title="{effect:+.3f}">{html.escape(text[start:end])}</span>')
        cursor = end
    pieces.append(html.escape(text[cursor:]))
    return '<div style="line-height: 1.9; white-space: pre-wrap">' + "".join(pieces) + "</div>"


def _output_name(explanation: Explanation) -> str:
    if explanation.output is None:
        return t("explain.output_value", value=f"{explanation.value:.2f}")
    return t("explain.output_class", label=explanation.output, value=f"{explanation.value:.0%}")


def show_text_explanation(predictor: Predictor, text: str, unit: str) -> None:
    """Explain one text prediction by removing one word or sentence at a time."""
    try:
        with st.spinner(t("explain.computing")):
            explanation = explain_text(predictor, text, unit=unit)
    except EduTuneError as error:
        show_error(error)
        return
    st.markdown(f"**{t('explain.title')}** · {_output_name(explanation)}")
    st.markdown(highlighted_html(text, explanation.parts), unsafe_allow_html=True)
    strongest = explanation.parts.reindex(explanation.parts["effect"].abs().sort_values(ascending=False).index)
    table = strongest.head(TOP_PARTS)[["part", "effect"]].round(4)
    st.dataframe(table.rename(columns={"part": t("explain.part"), "effect": t("explain.effect")}), hide_index=True,
                 width="stretch")
    st.caption(t("explain.text_caption"))


def show_row_explanation(predictor: Predictor, row: pd.DataFrame) -> None:
    """Explain one student's prediction by setting one input at a time to its reference value."""
    output = default_at_risk_label(predictor.labels) if predictor.labels and len(predictor.labels) == 2 else None
    try:
        explanation = explain_row(predictor, row, output=output)
    except EduTuneError as error:
        show_error(error)
        return
    parts = explanation.parts
    st.markdown(f"**{t('explain.title')}** · {_output_name(explanation)}")
    st.plotly_chart(bars_figure(parts["part"].tolist(), parts["effect"].round(4).tolist(), t("explain.features"),
                                t("explain.effect")), width="stretch")
    table = parts.assign(value=parts["value"].astype(str), reference=parts["reference"].astype(str)).round(4)
    st.dataframe(table.rename(columns={"part": t("explain.feature"), "value": t("explain.value"),
                                       "reference": t("explain.reference"), "effect": t("explain.effect")}),
                 hide_index=True, width="stretch")
    st.caption(t("explain.row_caption"))
