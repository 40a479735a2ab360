"""The notebook layer: magics, the cell runner, widgets. The only place IPython is imported."""
