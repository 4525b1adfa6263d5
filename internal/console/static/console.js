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
  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, { headers: { "X-Console-Partial": "1" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) main.innerHTML = html; })
      .catch(function () {});
  }
  setInterval(refresh, every);
})();
