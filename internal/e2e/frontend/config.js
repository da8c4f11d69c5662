// Where this page signs people in and which service it calls. Edit for your
// deployment, or override any of these once with query parameters, e.g.
// index.html?issuer=http://127.0.0.1:4000&serviceURL=http://127.0.0.1:8080
export default {
  issuer: 'http://127.0.0.1:4000', // the app's OpenID Connect issuer
  clientId: 'example-frontend', // a public client at that issuer: no secret in a page
  audience: 'http://127.0.0.1:8080', // the service's AUTH_AUDIENCE, sent as resource=
  serviceURL: 'http://127.0.0.1:8080', // where the service answers /graphql
  scope: 'openid uploads:read uploads:delete',
};
