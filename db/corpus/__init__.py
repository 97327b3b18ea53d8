"""The harvested literature: articles and their revisions, the run log, full text, designs, study facts."""
