"""Reports stage: the owner's figures per step, operator and listener with their margins,
not-in-script situations, sampling and sales outcomes. The top of the pipeline: may import every stage."""
