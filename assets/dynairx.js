/* Clientside callbacks (referenced with ClientsideFunction, so no inline script is needed under the CSP). */
(function () {
  "use strict";
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.dynairx = {
    /* Mirror the worklist's filter state into the address bar (deep links, back button) and refresh the grid. */
    syncWorklistQuery: function (query, gridId) {
      var wanted = query || "";
      if (window.location.pathname === "/" && window.location.search !== wanted) {
        window.history.replaceState(window.history.state, "", "/" + wanted);
      }
      if (window.dash_ag_grid && window.dash_ag_grid.getApiAsync) {
        window.dash_ag_grid.getApiAsync(gridId).then(function (api) {
          api.purgeInfiniteCache();
        });
      }
      return wanted;
    },
    /* Print the SMR pre-visit pack (print styles in dynairx.css print only that section). */
    printPack: function (clicks) {
      if (clicks) {
        window.print();
      }
      return clicks || 0;
    }
  };
})();
