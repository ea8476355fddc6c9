/* civicmap map pages: a canvas point layer, the findings table (sort, fly to), the name search.
   Loaded from the page head, before the Folium map script; no inline handlers (CSP). */
(function () {
  "use strict";

  /* ---- L.civicPoints: many points on one canvas; click opens a text-only popup ---- */
  L.CivicPoints = L.Layer.extend({
    initialize: function (data) {
      this._d = data;
      this._zoom = null;
    },
    onAdd: function (map) {
      this._canvas = L.DomUtil.create("canvas", "cm-points leaflet-zoom-hide");
      map.getPanes().overlayPane.appendChild(this._canvas);
      map.on("moveend zoomend resize viewreset", this._redraw, this);
      map.on("preclick", this._click, this);
      this._redraw();
    },
    onRemove: function (map) {
      L.DomUtil.remove(this._canvas);
      map.off("moveend zoomend resize viewreset", this._redraw, this);
      map.off("preclick", this._click, this);
    },
    getBounds: function () {
      var d = this._d, b = L.latLngBounds([]);
      for (var i = 0; i < d.x.length; i++) b.extend([d.y[i], d.x[i]]);
      return b;
    },
    _project: function () {
      var map = this._map, z = map.getZoom(), d = this._d, n = d.x.length;
      if (this._zoom === z) return;
      this._px = new Float64Array(n);
      this._py = new Float64Array(n);
      for (var i = 0; i < n; i++) {
        var p = map.project([d.y[i], d.x[i]], z);
        this._px[i] = p.x;
        this._py[i] = p.y;
      }
      this._zoom = z;
    },
    _redraw: function () {
      var map = this._map, c = this._canvas, d = this._d;
      if (!map) return;
      var size = map.getSize(), dpr = window.devicePixelRatio || 1;
      L.DomUtil.setPosition(c, map.containerPointToLayerPoint([0, 0]));
      c.width = size.x * dpr;
      c.height = size.y * dpr;
      c.style.width = size.x + "px";
      c.style.height = size.y + "px";
      this._project();
      var origin = map.getPixelOrigin().add(map._getMapPanePos().multiplyBy(-1));
      this._origin = origin;
      var ctx = c.getContext("2d"), r = d.radius, px = this._px, py = this._py;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.beginPath();
      for (var i = 0; i < px.length; i++) {
        var x = px[i] - origin.x, y = py[i] - origin.y;
        if (x < -r || y < -r || x > size.x + r || y > size.y + r) continue;
        ctx.moveTo(x + r, y);
        ctx.arc(x, y, r, 0, 6.2832);
      }
      if (d.fill) {
        ctx.globalAlpha = 0.75;
        ctx.fillStyle = d.fill;
        ctx.fill();
      }
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1;
      ctx.strokeStyle = d.color;
      ctx.stroke();
    },
    _click: function (e) {
      if (!this._px) return;
      var o = this._origin, cp = e.containerPoint, best = -1, bestD = 64, px = this._px, py = this._py;
      for (var i = 0; i < px.length; i++) {
        var dx = px[i] - o.x - cp.x, dy = py[i] - o.y - cp.y, dd = dx * dx + dy * dy;
        if (dd < bestD) { bestD = dd; best = i; }
      }
      if (best < 0) return;
      var d = this._d, box = L.DomUtil.create("div", "cm-popup");
      L.DomUtil.create("div", "cm-popup-title", box).textContent = d.t[best];
      var table = L.DomUtil.create("table", "", box);
      var popup = L.popup({maxWidth: 360}).setLatLng([d.y[best], d.x[best]]).setContent(box);
      var map = this._map;
      // on "preclick" and deferred: a polygon under the point opens its popup on "click" (and stops
      // the event), then the point's popup replaces it
      setTimeout(function () { popup.openOn(map); }, 0);
      if (!d.url) return;
      fetch(d.url.replace("{i}", best), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.ok ? r.json() : {rows: []}; })
        .then(function (data) {
          (data.rows || []).forEach(function (row) {
            if (!row[1] || row[1] === d.t[best]) return;
            var tr = L.DomUtil.create("tr", "", table);
            L.DomUtil.create("th", "", tr).textContent = row[0];
            L.DomUtil.create("td", "", tr).textContent = row[1];
          });
          popup.update();
        })
        .catch(function () { /* details unavailable (signed out, layer replaced) */ });
    }
  });
  L.civicPoints = function (data) { return new L.CivicPoints(data); };

  /* ---- page wiring (after the map script has run) ---- */
  function mapOf(el) {
    return el && el.dataset.map ? window[el.dataset.map] : null;
  }

  function flyTo(map, lat, lon, zoom) {
    if (!map) return;
    map.flyTo([lat, lon], Math.max(map.getZoom(), zoom || 17), {duration: 0.6});
  }

  function wireTable(table) {
    var map = mapOf(table);
    table.querySelectorAll("tbody tr[data-lat]").forEach(function (tr) {
      tr.addEventListener("click", function () {
        table.querySelectorAll("tr.table-active").forEach(function (r) { r.classList.remove("table-active"); });
        tr.classList.add("table-active");
        flyTo(map, parseFloat(tr.dataset.lat), parseFloat(tr.dataset.lon), 17);
      });
    });
    table.querySelectorAll("thead th[data-sort]").forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
        var asc = th.dataset.dir !== "asc";
        th.parentNode.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
        th.dataset.dir = asc ? "asc" : "desc";
        var numeric = th.dataset.sort === "num";
        rows.sort(function (a, b) {
          var x = a.cells[idx].dataset.value || a.cells[idx].textContent;
          var y = b.cells[idx].dataset.value || b.cells[idx].textContent;
          var r = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, "zh-CN");
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function wireSearch(box) {
    var map = mapOf(box), src = document.getElementById(box.dataset.index);
    if (!src) return;
    var index = JSON.parse(src.textContent), input = box.querySelector("input"), list = box.querySelector("ul");
    function show() {
      var q = input.value.trim().toLowerCase();
      list.textContent = "";
      if (!q) return;
      var hits = index.filter(function (e) { return e.n.toLowerCase().indexOf(q) >= 0; }).slice(0, 8);
      hits.forEach(function (e) {
        var li = document.createElement("li"), b = document.createElement("button");
        b.type = "button";
        b.className = "list-group-item list-group-item-action";
        b.textContent = e.n;
        var kind = document.createElement("small");
        kind.textContent = e.k;
        b.appendChild(kind);
        b.addEventListener("click", function () {
          flyTo(map, e.lat, e.lon, 17);
          list.textContent = "";
          input.value = e.n;
        });
        li.appendChild(b);
        list.appendChild(li);
      });
      if (!hits.length) {
        var none = document.createElement("li");
        none.className = "cm-search-none";
        none.textContent = box.dataset.none || "—";
        list.appendChild(none);
      }
    }
    input.addEventListener("input", show);
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        var first = list.querySelector("button");
        if (first) first.click();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.cm-findings").forEach(wireTable);
    document.querySelectorAll(".cm-search").forEach(wireSearch);
    document.querySelectorAll("form.cm-map-filters select, form.cm-map-filters input[type=checkbox]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
  });
})();
