"""Qt item-model adapters over plain data (never a widget per row)."""
