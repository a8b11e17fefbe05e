/* app.js: small, optional comforts for snapkeep's web view.  Every page
 * works without it: filters are plain GET forms, charts are server-drawn
 * SVG with <title> hover text.  Served by the daemon (CSP script-src 'self'). */
(function () {
  'use strict';

  /* Filter selects apply on change. */
  document.querySelectorAll('select[data-autosubmit]').forEach(function (select) {
    select.addEventListener('change', function () {
      if (select.form) select.form.submit();
    });
  });

  /* Ask before a state change (reprocess). */
  document.querySelectorAll('form[data-confirm]').forEach(function (form) {
    form.addEventListener('submit', function (event) {
      if (!window.confirm(form.getAttribute('data-confirm'))) event.preventDefault();
    });
  });

  /* "/" jumps to the filter box, as on many sites. */
  var search = document.querySelector('input[data-hotkey]');
  if (search) {
    document.addEventListener('keydown', function (event) {
      var tag = document.activeElement ? document.activeElement.tagName : '';
      if (event.key === search.getAttribute('data-hotkey') && tag !== 'INPUT' &&
          tag !== 'SELECT' && tag !== 'TEXTAREA') {
        event.preventDefault();
        search.focus();
        search.select();
      }
    });
  }
})();
