"""Active learning with modAL: query strategies, the rounds loop, the pipeline stage, human labels, reports."""
