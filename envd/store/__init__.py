"""Store backends: one small interface, content-addressed layout (DESIGN.md §6)."""
