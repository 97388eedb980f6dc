/* Cell renderers for the worklist grid (dash-ag-grid looks them up by name in this object).
   Plain React elements from a static file, so they run under the strict Content-Security-Policy (no eval).
   Risk bands arrive with the row data (computed in app/theme.py, the one home of the band thresholds). */
(function () {
  "use strict";
  var h = React.createElement;
  var funcs = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});

  funcs.PatientLink = function (props) {
    if (!props.value) {
      return null;
    }
    return h("a", { href: "/patient/" + encodeURIComponent(props.value), className: "dx-patient-link" },
      props.value);
  };

  funcs.RiskCell = function (props) {
    if (props.value === null || props.value === undefined) {
      return h("span", { className: "dx-muted" }, "—");
    }
    var band = props.data ? props.data[props.colDef.field + "_band"] : null;
    return h("span", { className: "dx-risk-chip dx-risk-" + (band || "none") },
      Number(props.value).toFixed(1) + "%",
      h("span", { className: "visually-hidden" }, band ? " (" + band + ")" : ""));
  };

  funcs.RiskChange = function (props) {
    if (props.value === null || props.value === undefined) {
      return h("span", { className: "dx-muted" }, "—");
    }
    var value = Number(props.value);
    var sign = value > 0 ? "+" : (value < 0 ? "−" : "±");
    var text = sign + Math.abs(value).toFixed(1) + " pts";
    if (props.data && props.data.rising) {
      return h("span", { className: "dx-rising" }, h("span", { "aria-hidden": "true" }, "▲ "), text,
        h("span", { className: "visually-hidden" }, " (rising risk)"));
    }
    return h("span", null, text);
  };

  funcs.FlagsCell = function (props) {
    var summary = props.data ? props.data.flags_summary : "";
    if (!summary) {
      return h("span", { className: "dx-muted" }, "None");
    }
    return h("span", { className: props.data.flags_high ? "dx-flags-high" : "" }, summary);
  };
})();
