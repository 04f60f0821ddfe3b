// The case page: where it happened (position, shape, the truck's track)
// and the curves of its evidence (load, gas, fill...).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("case-data").textContent);
  var el = document.getElementById("map");
  window.sanigateMap(el, data.tiles, function (map) {
    var group = L.featureGroup().addTo(map);
    if (data.track && data.track.length > 1) {
      L.polyline(data.track.map(function (p) { return [p[0], p[1]]; }), { color: "#0b5cad", weight: 4 }).addTo(group);
    }
    (data.track || []).forEach(function (p) {
      L.circleMarker([p[0], p[1]], { radius: 3, color: "#0b5cad" }).addTo(group);
    });
    if (data.geometry) {
      L.geoJSON(data.geometry, { style: { color: "#d0312d", weight: 5 } }).addTo(group);
    }
    if (data.has_pos) {
      L.circleMarker([data.lat, data.lon], { radius: 9, color: "#d0312d", fillColor: "#d0312d", fillOpacity: 0.6 })
        .addTo(group).bindTooltip("●");
    }
    if (group.getLayers().length) {
      var b = group.getBounds();
      if (b.isValid()) { map.fitBounds(b.pad(0.5), { maxZoom: 16 }); }
    }
    el.setAttribute("data-ready", "1");
  });
  var curve = document.getElementById("curve");
  if (!data.series.length) { curve.setAttribute("data-ready", "0"); return; }
  var xs = {}, names = data.series.map(function (s) { return s.name; });
  data.series.forEach(function (s) { s.points.forEach(function (p) { xs[p[0]] = true; }); });
  var x = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
  var cols = [x];
  data.series.forEach(function (s) {
    var m = {};
    s.points.forEach(function (p) { m[p[0]] = p[1]; });
    cols.push(x.map(function (t) { return t in m ? m[t] : null; }));
  });
  var colors = ["#0b5cad", "#d0312d", "#2e8b57", "#b06000", "#8a5cf6"];
  var opts = {
    width: Math.max(280, curve.clientWidth - 10), height: 240,
    series: [{}].concat(names.map(function (n, i) {
      return { label: n, stroke: colors[i % colors.length], width: 2, spanGaps: true, scale: i === 0 ? "y" : "y" + i };
    })),
    axes: [{}].concat(names.slice(0, 2).map(function (n, i) { return { scale: i === 0 ? "y" : "y1", side: i === 0 ? 3 : 1, label: n }; }))
  };
  var plot = new uPlot(opts, cols, curve);
  var resize = function () { plot.setSize({ width: Math.max(280, curve.clientWidth - 10), height: 240 }); };
  window.addEventListener("resize", resize);
  if (window.ResizeObserver) { new ResizeObserver(resize).observe(curve); }
  curve.setAttribute("data-ready", "1");
})();
