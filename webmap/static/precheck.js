/* The licence pre-check counter (templates/precheck.html): context layers, a map click sends
 * the location to /precheck/check (CSRF token in X-CSRFToken), the answer's panel replaces the
 * side panel's and its drawing (candidate, evidence lines, sites in conflict) goes on the map.
 * Every name from the data is set as text (textContent), never as HTML. */
(function () {
  "use strict";
  var dataEl = document.getElementById("cm-pc-data");
  if (!dataEl || !window.L) { return; }
  var data = JSON.parse(dataEl.textContent);
  var map = window[data.map];
  if (!map) { return; }
  var L = window.L;
  var labels = data.labels;
  var COLORS = { violation: "#c8161d", recheck: "#d48806", ok: "#2f8a3e", nearest: "#2f8a3e" };
  var form = document.getElementById("cm-pc-form");
  var answer = document.getElementById("cm-pc-answer");

  function textTip(layer, text, options) {
    var span = document.createElement("span");
    span.textContent = text;
    layer.bindTooltip(span, options || {});
    return layer;
  }

  // ---------------------------------------------------------------- context layers
  var ctx = data.context || {};
  var overlays = {};
  if (ctx.roads) {
    overlays[labels.roads] = L.geoJSON(ctx.roads, {
      style: { color: "#c3ccd6", weight: 1.2 }, interactive: false
    }).addTo(map);
  }
  if (ctx.subdistricts) {
    overlays[labels.subdistricts] = L.geoJSON(ctx.subdistricts, {
      style: { color: "#5f6b7a", weight: 1.5, dashArray: "6 4", fill: false }, interactive: false
    }).addTo(map);
  }
  if (ctx.schools) {
    overlays[labels.schools] = L.geoJSON(ctx.schools, {
      style: { color: "#1d4f91", weight: 1, fillColor: "#4f7cc0", fillOpacity: 0.25 },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 6, color: "#1d4f91", weight: 1, fillColor: "#4f7cc0", fillOpacity: 0.5 });
      },
      onEachFeature: function (f, layer) {
        textTip(layer, f.properties.name + (f.properties.level ? " · " + f.properties.level : ""));
      }
    }).addTo(map);
  }
  if (ctx.venues) {
    overlays[labels.venues] = L.geoJSON(ctx.venues, {
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 3.5, color: "#8a6100", weight: 1, fillColor: "#f0b429", fillOpacity: 0.9 });
      },
      onEachFeature: function (f, layer) { textTip(layer, f.properties.name); }
    }).addTo(map);
  }
  var drawn = L.featureGroup().addTo(map);
  overlays[labels.result] = drawn;
  L.control.layers(null, overlays, { collapsed: true, position: "topright" }).addTo(map);

  // ---------------------------------------------------------------- the answer on the map
  function draw(d, fit) {
    drawn.clearLayers();
    if (!d) { return; }
    d.sites.forEach(function (s) {
      var color = COLORS[s.state] || COLORS.ok;
      var layer = L.geoJSON(s.geometry, {
        style: { color: color, weight: s.state === "nearest" ? 2 : 3, fillColor: color, fillOpacity: 0.3 },
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 9, color: color, weight: 3, fillColor: color, fillOpacity: 0.3 });
        }
      });
      textTip(layer, s.name).addTo(drawn);
    });
    d.lines.forEach(function (line) {
      var color = COLORS[line.state] || COLORS.ok;
      var layer = L.polyline(line.coords, { color: color, weight: 3, dashArray: line.state === "violation" ? null : "6 5" });
      textTip(layer, line.label, { permanent: true, direction: "center", className: "cm-pc-tip" }).addTo(drawn);
    });
    var marker = L.circleMarker(d.candidate, { radius: 8, color: "#fff", weight: 3, fillColor: "#1f2933", fillOpacity: 1 });
    textTip(marker, labels.candidate).addTo(drawn);
    if (fit) {
      var bounds = drawn.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds.pad(1.2), { maxZoom: 16 }); }
    }
  }

  function showError(message) {
    drawn.clearLayers();
    answer.textContent = "";
    var div = document.createElement("div");
    div.className = "alert alert-danger cm-pc-error mt-3 mb-0";
    div.id = "cm-pc-error";
    div.setAttribute("role", "alert");
    div.textContent = message;
    answer.appendChild(div);
  }

  function bindPrint() {
    var button = document.getElementById("cm-pc-print");
    if (button) { button.addEventListener("click", function () { window.print(); }); }
  }

  function selectDatum(value) {
    var select = form.elements.datum;
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) { select.value = value; return value; }
    }
    return null;
  }

  // ---------------------------------------------------------------- map click → check
  map.on("click", function (e) {
    var x = e.latlng.lng.toFixed(7);
    var y = e.latlng.lat.toFixed(7);
    form.elements.x.value = x;
    form.elements.y.value = y;
    var datum = selectDatum(data.clickDatum) || "wgs84";
    answer.classList.add("cm-pc-busy");
    fetch(data.checkUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": form.elements.csrf_token.value },
      body: JSON.stringify({
        x: x, y: y, datum: datum, kind: form.elements.kind.value,
        profile: form.elements.profile.value, basemap: form.elements.basemap.value
      })
    }).then(function (response) {
      return response.json().then(function (body) { return body; }, function () { return {}; });
    }).then(function (body) {
      answer.classList.remove("cm-pc-busy");
      if (body.html && body.result) {
        answer.innerHTML = body.html;  // rendered and escaped by the server's template
        bindPrint();
        draw(body.result.draw, false);
      } else {
        showError(body.error || labels.failed);
      }
    }, function () {
      answer.classList.remove("cm-pc-busy");
      showError(labels.failed);
    });
  });

  // a new profile offers other venue kinds: reload the counter with it
  form.elements.profile.addEventListener("change", function () {
    var params = new URLSearchParams({ profile: form.elements.profile.value, kind: form.elements.kind.value,
      basemap: form.elements.basemap.value });
    window.location.search = params.toString();
  });
  window.addEventListener("beforeprint", function () { map.invalidateSize(); });
  bindPrint();
  draw(data.draw, true);
}());
