// Behaviour that used to sit in inline handlers (onclick, onsubmit). The Content-Security-Policy
// (policy_service/security_headers.py) runs no inline script, so each is bound here, by data
// attribute, once for the whole document.
(function () {
  "use strict";

  // <form data-confirm="..."> asks before it is sent (void a use, revoke tokens).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // Flask-Admin's menus and tabs are links to "javascript:void(0)"; following one would run a
  // javascript: URL, which the policy refuses (and reports). Their own handlers still run.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("a[href^='javascript:']")) {
      event.preventDefault();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var target = event.target.closest(
      "[data-confirm-click], [data-print], [data-model-action], [data-inline-add], a.filter");
    if (!target) {
      return;
    }
    if (target.matches("[data-confirm-click]")) {
      // Flask-Admin's row delete button.
      if (!window.confirm(target.dataset.confirmClick)) {
        event.preventDefault();
      }
      return;
    }
    event.preventDefault();
    if (target.matches("[data-print]")) {
      window.print();
    } else if (target.matches("[data-model-action]")) {
      // Flask-Admin's "With selected" actions (modelActions comes from its actions.js).
      window.modelActions.execute(target.dataset.modelAction);
    } else if (target.matches("[data-inline-add]")) {
      // Flask-Admin's "Add" button of an inline list (faForm comes from its form.js).
      window.faForm.addInlineField(target, target.dataset.inlineAdd);
    }
    // a.filter: Flask-Admin's filters script adds the filter; the link itself goes nowhere.
  });

  // Select2 3.5 (Flask-Admin's choice lists) gives the text input that holds a closed list's
  // focus role="button", which a text input may not have (axe: aria-allowed-role). It is a
  // collapsed combobox: typing opens the list. Patched before Flask-Admin's form.js builds
  // the lists, so lists added later (inline rows) get it too.
  var single = window.Select2 && window.Select2["class"].single;
  if (single) {
    var createContainer = single.prototype.createContainer;
    single.prototype.createContainer = function () {
      var container = createContainer.apply(this, arguments);
      container.find(".select2-focusser").attr({role: "combobox", "aria-expanded": "false"});
      return container;
    };
  }
})();
