// Dark or light: the saved choice, else the system's; set before the page paints.
(function () {
  var saved = localStorage.getItem("scanflow-theme");
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved || (dark ? "dark" : "light");
})();
