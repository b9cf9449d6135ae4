// Progressive extras only: the page reads completely without script.
document.addEventListener("DOMContentLoaded", function () {
  var body = document.body;
  var box = document.getElementById("only-problems");
  if (box) {
    box.addEventListener("change", function () { body.classList.toggle("only-problems", box.checked); });
  }
  // Count the charts that were laid out with a visible size: a self-check the page states
  // at the top, and that tests read back from the DOM.
  var kinds = {};
  var charts = document.querySelectorAll("svg.chart");
  var drawn = 0;
  charts.forEach(function (svg) {
    var r = svg.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && svg.querySelectorAll("rect,path,line,circle").length > 0) {
      drawn++;
      var kind = (svg.getAttribute("class").match(/chart-(\w+)/) || [])[1];
      kinds[kind] = (kinds[kind] || 0) + 1;
    }
  });
  body.setAttribute("data-charts-total", String(charts.length));
  body.setAttribute("data-charts-drawn", String(drawn));
  body.setAttribute("data-chart-kinds", Object.keys(kinds).sort().map(function (k) { return k + ":" + kinds[k]; }).join(","));
  var status = document.getElementById("chart-status");
  if (status) { status.textContent = drawn + " of " + charts.length + " charts drawn"; }
  body.setAttribute("data-ready", "true");
});
