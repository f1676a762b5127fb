"""Running and judging a model: inference, metrics, statistics, scoring, figures and analyses."""
