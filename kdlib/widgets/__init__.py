"""Interactive explorers for JupyterLab: what temperature does to a teacher, and what the sweeps say.

``temperature_explorer`` (``widgets.temperature``) shows how a teacher's softmax flattens as
T grows (paper Fig. 4) with the numbers the paper quotes; ``results_explorer``
(``widgets.results``) browses a results frame: accuracy vs T per distillation length
(Fig. 3 style) and, from the per-epoch history, accuracy vs epoch. ``widgets.render`` turns
charts into inline SVG (live) and PNG (headless, papermill); ``widgets.charts`` draws them.
"""
from kdlib.widgets.results import SPEC_COLUMNS, ResultsExplorer, results_explorer
from kdlib.widgets.temperature import STUDY_TEMPERATURES, T_RANGE, TemperatureExplorer, temperature_explorer

__all__ = ["temperature_explorer", "results_explorer", "TemperatureExplorer", "ResultsExplorer", "SPEC_COLUMNS",
           "STUDY_TEMPERATURES", "T_RANGE"]
