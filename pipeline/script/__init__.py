"""Script stage: sales scripts (checklists) and the alignment of a transcript's
operator sentences with their steps. Imports the speech stage, config and errors only."""
