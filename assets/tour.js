/* The in-app tour's clientside callbacks (registered by app/components/tour.py; a file, not an inline script, so
   the Content-Security-Policy needs no exception). The only thing stored in the browser is the boolean "dismissed"
   flag, through the dcc.Store with storage_type "local". */
(function () {
  "use strict";
  window.dash_clientside = window.dash_clientside || {};

  function noUpdate() {
    return window.dash_clientside.no_update;
  }

  /* The id of the component whose property triggered the callback (string ids only). */
  function triggeredId() {
    var context = window.dash_clientside.callback_context;
    if (!context || !context.triggered || !context.triggered.length) {
      return null;
    }
    var propId = context.triggered[0].prop_id || "";
    return propId.slice(0, propId.lastIndexOf("."));
  }

  window.dash_clientside.dynairx_tour = {
    /* Hide the invitation once the tour was dismissed or finished in this browser. */
    showInvite: function (dismissed) {
      return dismissed === true;
    },

    /* Open at the first step, or move back and forward; "Next" on the last step closes the tour. */
    navigate: function (launchClicks, inviteClicks, backClicks, nextClicks, step, panelIds, backId, nextId) {
      var current = typeof step === "number" ? step : 0;
      var last = Math.max(0, (panelIds || []).length - 1);
      var trigger = triggeredId();
      if (trigger === backId) {
        return [true, Math.max(0, current - 1)];
      }
      if (trigger === nextId) {
        return current >= last ? [false, 0] : [true, current + 1];
      }
      return [true, 0];
    },

    /* Show one step's panel, say where we are, and label the last "Next" as "Finish". */
    showStep: function (step, panelIds) {
      var count = (panelIds || []).length;
      var current = Math.min(Math.max(typeof step === "number" ? step : 0, 0), Math.max(0, count - 1));
      var hidden = (panelIds || []).map(function (_id, index) {
        return index !== current;
      });
      return [hidden, "Step " + (current + 1) + " of " + count, current === 0, current >= count - 1 ? "Finish" : "Next"];
    },

    /* Remember dismissal: the tour was closed (finished, closed or Escape) or the invitation declined. */
    remember: function (isOpen, declineClicks, declineId) {
      if (triggeredId() === declineId && declineClicks) {
        return true;
      }
      if (isOpen === false) {
        return true;
      }
      return noUpdate();
    }
  };
})();
