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
  var select2 = window.Select2 && window.Select2["class"];
  var single = select2 && select2.single;
  if (single) {
    var createContainer = single.prototype.createContainer;
    single.prototype.createContainer = function () {
      var container = createContainer.apply(this, arguments);
      container.find(".select2-focusser").attr({role: "combobox", "aria-expanded": "false"});
      return container;
    };
  }

  // The field's own <label> (admin/templates/admin/lib.html gives it the id <field id>-label;
  // a label without one gets it here).
  function labelOf(element) {
    var id = element.getAttribute("id");
    var label = id && document.querySelector("label[for='" + window.CSS.escape(id) + "']");
    if (label && !label.id) {
      label.id = id + "-label";
    }
    return label || null;
  }

  // What the template put on the hidden <select> for assistive technology (the messages and
  // hint it is described by, aria-invalid, required) goes to the input that takes the focus.
  function carryDescription(element, focusable) {
    ["aria-describedby", "aria-invalid"].forEach(function (name) {
      if (element.hasAttribute(name)) {
        focusable.setAttribute(name, element.getAttribute(name));
      }
    });
    if (element.required) {
      focusable.setAttribute("aria-required", "true");
    }
  }

  // Select2 names a closed list's combobox by the chosen value alone (aria-labelledby = its
  // .select2-chosen): a screen reader said "ACME (Acme Health)", never "Payer". Named by the
  // field's label, then the choice.
  if (single) {
    var initSingle = single.prototype.initContainer;
    single.prototype.initContainer = function () {
      initSingle.apply(this, arguments);
      var element = this.opts.element[0];
      var focusser = this.focusser[0];
      var label = labelOf(element);
      if (label) {
        var chosen = focusser.getAttribute("aria-labelledby");
        focusser.setAttribute("aria-labelledby", chosen ? label.id + " " + chosen : label.id);
      }
      carryDescription(element, focusser);
    };
  }
  // A multiple list's search input is already named by a copy of the label; it takes the
  // description and state.
  var multi = select2 && select2.multi;
  if (multi) {
    var initMulti = multi.prototype.initContainer;
    multi.prototype.initContainer = function () {
      initMulti.apply(this, arguments);
      carryDescription(this.opts.element[0], this.search[0]);
    };
  }

  // A refused form opens on its first wrong field, so a keyboard or screen reader user lands on
  // it and hears its message. Flask-Admin's forms (admin/templates/admin/lib.html) and the app's
  // own (the eligibility, claim, import, remittance, schedule, denials, users and change-password
  // pages: the macros of admin/templates/admin/eligibility_macros.html) mark such a field
  // aria-invalid. Run after Flask-Admin's form.js has built its Select2 lists (its ready handler
  // is queued after this one; the timeout runs after it), and only if nothing took the focus yet.
  // The sign-in pages (security/base.html) have no jQuery: there it runs once the page is parsed.
  function focusFirstInvalid() {
    var active = document.activeElement;
    if (active && active !== document.body && active !== document.documentElement) {
      return;
    }
    var field = document.querySelector("form [aria-invalid='true']");
    if (!field) {
      return;
    }
    var $ = window.jQuery;
    if ($ && $(field).data("select2")) {
      $(field).select2("focus");
    } else {
      field.focus();
    }
  }
  function later() {
    window.setTimeout(focusFirstInvalid, 0);
  }
  if (window.jQuery) {
    window.jQuery(later);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", later);
  } else {
    later();
  }
})();
