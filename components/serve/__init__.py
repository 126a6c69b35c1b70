"""Serving: the prediction API (`cityseg serve`) and the web app (`cityseg app`)."""
