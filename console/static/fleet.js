// The fleet map: every device the user sees at its last position, coloured
// by state, refreshed every few seconds.
(function () {
  "use strict";
  var el = document.getElementById("fleetmap"), rows = document.getElementById("device-rows");
  var labels = JSON.parse(document.getElementById("status-labels").textContent);
  var colors = { ok: "#2e9d4f", full: "#e08a00", alarm: "#d0312d", offline: "#8a8f94" };
  var markers = {};
  function esc(s) { var d = document.createElement("div"); d.textContent = String(s); return d.innerHTML; }
  function popup(d) {
    var h = "<b>" + esc(d.id) + "</b> " + esc(d.kind) + "<br>" + esc(labels[d.status] || d.status);
    if (d.last) { h += "<br>" + esc(new Date(d.last).toLocaleString()); }
    Object.keys(d.fields || {}).sort().slice(0, 12).forEach(function (k) { h += "<br>" + esc(k) + ": " + esc(d.fields[k]); });
    (d.cases || []).forEach(function (c) { h += '<br><a href="/cases/' + encodeURIComponent(c.id) + '">#' + esc(c.id) + " " + esc(c.type) + "</a>"; });
    return h;
  }
  window.sanigateMap(el, el.getAttribute("data-tiles") || null, function (map) {
    function refresh() {
      fetch("/fleet.json", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (j) {
        var html = "";
        j.devices.forEach(function (d) {
          html += "<tr><td>" + esc(d.id) + "</td><td>" + esc(d.kind) + "</td><td>" + esc(d.district || "") + "</td><td>" +
            '<span class="dot ' + esc(d.status) + '"></span>' + esc(labels[d.status] || d.status) + "</td><td>" +
            (d.cases || []).map(function (c) { return '<a href="/cases/' + encodeURIComponent(c.id) + '">#' + esc(c.id) + "</a>"; }).join(" ") + "</td></tr>";
          if (!d.has_pos) { return; }
          var m = markers[d.id];
          if (!m) {
            m = markers[d.id] = L.circleMarker([d.lat, d.lon], { radius: 6, weight: 2 }).addTo(map);
          }
          m.setLatLng([d.lat, d.lon]);
          m.setStyle({ color: colors[d.status], fillColor: colors[d.status], fillOpacity: 0.8 });
          m.bindPopup(popup(d));
        });
        rows.innerHTML = html;
        el.setAttribute("data-ready", "1");
      }).catch(function () { /* try again on the next round */ });
    }
    refresh();
    setInterval(refresh, 5000);
  });
})();
