"""Write a stored layer to the formats bureaus exchange: GeoJSON, GeoPackage, GeoParquet, CSV, XLSX.

Layers are stored in WGS84; an export is WGS84 unless another datum is asked for.  CSV and
XLSX use the Chinese headers of the schema (名称, 经度, 纬度 …), which civicmap also reads
back, so an exported sheet can be edited in Excel and re-imported.  GCJ-02 and BD-09 have no
CRS code, so they are offered only for CSV/XLSX, where the datum is named in the file name.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from geo.crs import geometry_from_wgs84, parse_crs
from layers.errors import CivicmapError, CRSError
from layers.schema import get_schema

TABLE_FORMATS = {".csv", ".xlsx"}
GEO_FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".parquet": None}


def to_table(gdf: gpd.GeoDataFrame, kind: str, *, crs: str = "wgs84") -> pd.DataFrame:
    """A plain table with Chinese headers: points as 经度/纬度 columns, other shapes as WKT."""
    schema = get_schema(kind)
    geoms = geometry_from_wgs84(gdf.geometry.values, crs)
    table = pd.DataFrame({"编号": gdf["id"].astype(str).values})
    for f in schema.fields:
        if f.name in gdf.columns:
            table[f.label_zh or f.name] = gdf[f.name].values
    types = shapely.get_type_id(geoms)
    if len(geoms) and (types == 0).all():
        table["经度"] = shapely.get_x(geoms).round(7)
        table["纬度"] = shapely.get_y(geoms).round(7)
    else:
        table["wkt"] = shapely.to_wkt(geoms, rounding_precision=7)
    return table


def export_layer(gdf: gpd.GeoDataFrame, path: str | Path, *, kind: str, crs: str = "wgs84") -> Path:
    """Write ``gdf`` (WGS84, as stored) to ``path``; the format follows the file extension.

    Raises
    ------
    CivicmapError
        For an unsupported extension, naming the ones supported.
    CRSError
        For GCJ-02/BD-09 asked of a format that would label them as WGS84.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    datum = parse_crs(crs)
    if suffix in TABLE_FORMATS:
        table = to_table(gdf, kind, crs=datum)
        if suffix == ".csv":
            table.to_csv(path, index=False, encoding="utf-8-sig")
        else:
            _write_xlsx(table, path, sheet=get_schema(kind).label_zh)
        return path
    if suffix not in GEO_FORMATS:
        allowed = ", ".join(sorted(TABLE_FORMATS | set(GEO_FORMATS)))
        raise CivicmapError(f"cannot export to {path.name}: extension {suffix!r} is not one of {allowed}")
    if datum.is_offset:
        raise CRSError(
            f"{datum.name} has no CRS code, so {path.name} would be read as WGS84 by other tools; "
            "export .csv or .xlsx for GCJ-02/BD-09 coordinates"
        )
    out = gdf if datum.name == "wgs84" else gdf.to_crs(datum.crs)
    if suffix == ".parquet":
        out.to_parquet(path)
    else:
        out.to_file(path, driver=GEO_FORMATS[suffix], engine="pyogrio")
    return path


def _write_xlsx(table: pd.DataFrame, path: Path, *, sheet: str) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        table.to_excel(writer, index=False, sheet_name=sheet[:31])
        ws = writer.sheets[sheet[:31]]
        ws.freeze_panes = "A2"
        for idx, column in enumerate(table.columns, start=1):
            longest = max([len(str(column))] + [len(str(v)) for v in table[column].head(200)])
            ws.column_dimensions[ws.cell(1, idx).column_letter].width = min(60, max(8, longest * 1.6))


def write_findings(findings: gpd.GeoDataFrame, path: str | Path, *, sheet: str = "violations") -> Path:
    """Write an analysis table: CSV (UTF-8 with BOM, for Excel in China), XLSX, or GeoJSON with its lines.

    CSV and XLSX carry the attribute columns; GeoJSON also carries each row's geometry (the
    shortest connecting line or the walking route).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    table = pd.DataFrame(findings.drop(columns="geometry", errors="ignore"))
    for col in table.select_dtypes("float").columns:
        table[col] = table[col].round(2)
    if suffix == ".csv":
        table.to_csv(path, index=False, encoding="utf-8-sig")
    elif suffix == ".xlsx":
        _write_xlsx(table, path, sheet=sheet)
    elif suffix in (".geojson", ".json"):
        findings.to_file(path, driver="GeoJSON", engine="pyogrio")
    else:
        raise CivicmapError(f"cannot write {path.name}: expected a .csv, .xlsx or .geojson file")
    return path
