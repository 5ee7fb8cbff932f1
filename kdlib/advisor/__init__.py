"""Which temperature for my setup? The paper's rules of thumb as an advisor you can check.

Frank & Davis end (Sect. 5) with rules of thumb meant to spare practitioners the
exhaustive grid search over T: AdamW is robust to T; with SGD small T wins early and
large T late; large T needs a teacher with general pretraining, little finetuning and a
dataset whose classes the pretraining knew; fine-grained datasets prefer higher T than
coarse ones; teachers trained from scratch prefer T near 1. The package:

``rules``        one ``Rule`` record per rule of thumb (feature, weight, words, finding)
``diagnostics``  one pass of the teacher over the training set (``diagnose``)
``calibration``  the rules refit on the stored sweeps (``calibrate``)
``advice``       ``advise`` / ``recommend``: a temperature, its range and its reasons
``evaluation``   ``leave_one_setup_out``: what the advice is worth (regret), notebook 07's tables
``setups``       the stored sweeps as one table, scored on validation where the runs hold it
``confidence``   advisors fitted on training folds, with a stated chance of being within 0.5 pp
``heldout``      leave one setup / teacher origin / optimizer / dataset out; every fixed T; reliability
``verify``       advise, then verify: the advised T and its neighbours, regret against the number of runs
``verdict``      the closing note and ``evaluation.json``
"""
from kdlib.advisor.advice import PAPER_TEMPERATURES, Advice, advise, recommend
from kdlib.advisor.calibration import (LAMBDAS, MIN_SETUPS, T_MAX, T_MIN, Calibration, _fingerprint, advisor_dir,
                                       calibrate, current_calibration, fit_calibration, load_calibration, regret_at,
                                       sweeps)
from kdlib.advisor.diagnostics import TOP_K, Diagnostics, class_map_from_logits, diagnose, diagnostics_from_logits
from kdlib.advisor.evaluation import (LOSO_COLUMNS, STRATEGIES, advice_table, example_setups, leave_one_setup_out,
                                      regret_summary, stored_sweeps, validation_lines, weights_table, where_it_loses)
from kdlib.advisor.rules import (FEATURE_COLUMNS, FEATURE_NAMES, FEATURES, FINDINGS, PRIOR, REFERENCE_BATCH, RULES,
                                 Reason, Rule, Setting, halvings_short, rules_table)
from kdlib.advisor import confidence, heldout, setups, verdict, verify  # noqa: F401 - notebook 07 calls them
from kdlib.advisor.heldout import comparison, evaluate, evaluate_all, paired_interval, regret_table, reliability
from kdlib.advisor.verify import regret_vs_runs, usual_order, verification_plan
from kdlib.traits import Overlap, baseline_epochs, class_overlap, granularity, known_overlap

__all__ = ["advise", "recommend", "diagnose", "diagnostics_from_logits", "class_overlap", "class_map_from_logits",
           "calibrate", "fit_calibration", "load_calibration", "current_calibration", "sweeps",
           "leave_one_setup_out", "regret_summary", "where_it_loses", "rules_table", "granularity", "known_overlap",
           "baseline_epochs", "Advice", "Reason", "Diagnostics", "Overlap", "Calibration", "Setting", "Rule", "RULES",
           "FEATURES", "FINDINGS", "PAPER_TEMPERATURES", "STRATEGIES", "T_MIN", "T_MAX", "MIN_SETUPS", "LAMBDAS",
           "TOP_K", "REFERENCE_BATCH", "FEATURE_NAMES", "FEATURE_COLUMNS", "PRIOR", "advisor_dir", "regret_at",
           "halvings_short", "_fingerprint", "LOSO_COLUMNS", "advice_table", "example_setups", "stored_sweeps",
           "validation_lines", "weights_table", "evaluate", "evaluate_all", "regret_table", "comparison",
           "paired_interval", "reliability", "regret_vs_runs", "usual_order", "verification_plan"]
