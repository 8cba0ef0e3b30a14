/* 监督一点通 · 工作台: the little behaviour the pages need, loaded as a file
   (the Content-Security-Policy allows no inline script). Every page works
   without it; this only adds conveniences. */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // htmx requests carry the CSRF token as a header, like forms carry it as a field.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["X-CSRF-Token"] = token;
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target.closest("[data-print]") : null;
    if (target) {
      event.preventDefault();
      // data-print="slip": a 58 mm thermal slip; anything else: the A5 sheet.
      document.documentElement.classList.toggle("print-slip", target.dataset.print === "slip");
      window.print();
    }
  });

  // Irreversible actions ask once more.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm) {
      if (!window.confirm(form.dataset.confirm)) {
        event.preventDefault();
      }
    }
  });

  // Focus the first field of an action form when it is opened, unless a
  // field of it already has the focus: the toggle event comes a moment after
  // the click, and a quick hand (or a test) may already be typing in the
  // second field, whose text would go to the first.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details instanceof HTMLDetailsElement && details.open) {
      var first = details.querySelector("select, textarea, input:not([type=hidden])");
      var active = document.activeElement;
      var typing = active && details.contains(active) && active.matches("select, textarea, input");
      if (first && !typing) {
        first.focus();
      }
    }
  }, true);
})();
