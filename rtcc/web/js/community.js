// The center's emailed links point at community.html?verify=|manage=|footage=…:
// they are handled by the registration page, with the same query.
const target = `register.html${window.location.search}${window.location.hash}`;
document.getElementById("go").href = target;
window.location.replace(target);
