// The API reference: Swagger UI over the server's own OpenAPI document. Kept in a file (not
// inline) so the page's Content-Security-Policy allows scripts from /assets/ only.
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    withCredentials: true,
  });
});
