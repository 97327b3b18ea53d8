"""Operations: dump and restore, one job of a kind at a time."""
