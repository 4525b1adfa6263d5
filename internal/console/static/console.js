// Live pages: refresh the content every few seconds without reloading,
// unless the operator is using a form on it.
(function () {
  var main = document.getElementById("content");
  if (!main || !main.dataset.live) return;
  var every = parseInt(main.dataset.live, 10) || 2000;
  function busy() {
    var a = document.activeElement;
    return a && a.form && main.contains(a);
  }
  var live = document.getElementById("live");
  // The badge says whether the page is current: the time of the last
  // refresh, or that refreshing stopped (the hub is away, the session ended).
  function mark(ok) {
    if (!live) return;
    var now = new Date().toLocaleTimeString();
    if (ok) {
      live.className = "live";
      live.textContent = "\u25CF live, " + now;
    } else if (live.className !== "live stale") {
      live.className = "live stale";
      live.textContent = "\u25CF not refreshing since " + now;
    }
  }
  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, { headers: { "X-Console-Partial": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) main.innerHTML = html;
        mark(html !== null);
      })
      .catch(function () { mark(false); });
  }
  setInterval(refresh, every);
})();
