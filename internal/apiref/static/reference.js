// Draws the API document named by #reference's data-spec with Redoc.
document.addEventListener("DOMContentLoaded", function () {
  var el = document.getElementById("reference");
  if (!el || !window.Redoc) return;
  window.Redoc.init(el.getAttribute("data-spec"), {
    hideDownloadButton: false,
    expandResponses: "200",
    pathInMiddlePanel: true,
    theme: { typography: { fontFamily: "system-ui, sans-serif", headings: { fontFamily: "system-ui, sans-serif" } } }
  }, el);
});
