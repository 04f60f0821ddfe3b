// The base map shared by the case page and the fleet map: the city's
// districts, sites and routes from its GeoJSON, without a tile server
// unless one is configured.
window.sanigateMap = function (el, tiles, done) {
  "use strict";
  var map = L.map(el, { preferCanvas: true, attributionControl: !!tiles, keyboard: true, zoomSnap: 0.25 });
  if (tiles) { L.tileLayer(tiles, { maxZoom: 19 }).addTo(map); }
  var styles = {
    districts: { color: "#183153", weight: 2, fillColor: "#dfe7f0", fillOpacity: 0.5 },
    sites: { color: "#6b4f2a", weight: 1, fillColor: "#f1dfbf", fillOpacity: 0.7 },
    sweeping_routes: { color: "#2e8b57", weight: 3, opacity: 0.7 },
    collection_routes: { color: "#8a5cf6", weight: 3, opacity: 0.6, dashArray: "6 4" }
  };
  fetch("/map/layers.json", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (layers) {
    var overlays = {}, bounds = null;
    Object.keys(styles).forEach(function (name) {
      if (!layers[name]) { return; }
      var layer = L.geoJSON(layers[name], {
        style: function () { return styles[name]; },
        pointToLayer: function (f, ll) { return L.circleMarker(ll, { radius: 4, color: styles[name].color }); },
        onEachFeature: function (f, l) {
          var p = f.properties || {};
          if (p.name || p.id) { l.bindTooltip(String(p.name || p.id)); }
        }
      }).addTo(map);
      overlays[name] = layer;
      if (name === "districts") { bounds = layer.getBounds(); }
    });
    L.control.layers(null, overlays, { collapsed: true }).addTo(map);
    map.invalidateSize();
    if (bounds && bounds.isValid()) { map.fitBounds(bounds, { padding: [10, 10] }); } else { map.setView([0, 0], 2); }
    if (done) { done(map); }
  }).catch(function () { map.setView([0, 0], 2); if (done) { done(map); } });
  return map;
};
