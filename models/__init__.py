"""pLTV: features, model, baselines, evaluation, LTV curves and registry."""
