// Progressive enhancement: the report reads completely without this. It shows the outcome
// filter, hides cell sections and dims grid cells whose outcome is unticked, and opens every
// <details> before printing so a printout holds everything.
(function () {
  "use strict";
  var form = document.getElementById("filter");
  if (!form) { return; }
  form.hidden = false;
  function apply() {
    var on = {};
    form.querySelectorAll("input[type=checkbox]").forEach(function (i) { on[i.value] = i.checked; });
    document.querySelectorAll("section.cell[data-outcome]").forEach(function (s) {
      s.hidden = !on[s.getAttribute("data-outcome")];
    });
    document.querySelectorAll("table.grid td[data-outcome]").forEach(function (td) {
      td.classList.toggle("dim", !on[td.getAttribute("data-outcome")]);
    });
  }
  form.addEventListener("change", apply);
  apply();
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });
  console.info("flux-compat report: " + document.querySelectorAll("section.cell").length + " cell(s)");
})();
