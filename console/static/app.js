// The queue's live updates: new cases arrive as Server-Sent Events, are
// put on top of the first page, counted in a badge and, if chosen, beeped.
(function () {
  "use strict";
  if (!document.getElementById("queue-body") || !window.EventSource) { return; }
  var badge = document.getElementById("live"), count = document.getElementById("live-n");
  var sound = document.getElementById("sound"), n = 0, es = null;
  if (sound) {
    sound.checked = localStorage.getItem("sanigate.sound") === "1";
    sound.addEventListener("change", function () { localStorage.setItem("sanigate.sound", sound.checked ? "1" : "0"); });
  }
  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)(), o = ctx.createOscillator();
      o.frequency.value = 880; o.connect(ctx.destination); o.start(); o.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no audio */ }
  }
  function onCase(ev) {
    var body = document.getElementById("queue-body");
    var msg = JSON.parse(ev.data);
    if (document.querySelector('tr[data-id="' + msg.id + '"]')) { return; }
    n++;
    count.textContent = String(n);
    badge.hidden = false;
    var chip = document.getElementById("count-" + msg.state);
    if (chip && /^\d+$/.test(chip.textContent)) { chip.textContent = String(Number(chip.textContent) + 1); }
    if (body.getAttribute("data-live") === "1") {
      var t = document.createElement("tbody");
      t.innerHTML = msg.html;
      var row = t.firstElementChild;
      if (row) { row.classList.add("fresh"); body.insertBefore(row, body.firstChild); }
      var empty = document.querySelector(".empty");
      if (empty) { empty.remove(); }
    }
    if (sound && sound.checked) { beep(); }
  }
  // (Re)connect to the stream of the filters on the page: at load, and
  // after the filter form replaced the table.
  function connect() {
    var body = document.getElementById("queue-body");
    if (es) { es.close(); }
    es = new EventSource(body.getAttribute("data-events"));
    es.addEventListener("case", onCase);
  }
  connect();
  document.body.addEventListener("htmx:afterSettle", function () {
    n = 0;
    badge.hidden = true;
    connect();
  });
})();
