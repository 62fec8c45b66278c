// The hand-off page to a gateway that takes a posted form: submit it at once. Without
// script the shopper presses the visible button instead.
"use strict";
document.getElementById("handoff")?.submit();
