"""Folium builders for the map pages, one module per map or map element.

``features``     one escaped ``folium.GeoJson`` per layer (the only way features reach a map)
``legend``       the legend control
``point_cloud``  a canvas layer for tens of thousands of points (columnar data, one draw call)
``buffers``      the profile's limit buffers around protected sites, exact in metres
``violation_map`` / ``layers_map``  the two pages' maps
"""

from __future__ import annotations
