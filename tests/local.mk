# tests shared by several modules
