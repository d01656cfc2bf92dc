// Swagger UI of /docs, started from a file (the CSP forbids inline scripts).
// validatorUrl null: Swagger UI would otherwise send the spec to validator.swagger.io.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
