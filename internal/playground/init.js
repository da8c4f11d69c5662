// Starts GraphiQL against this server's /graphql endpoint. The headers
// editor opens with an x-api-key entry for the caller to fill in.
(function () {
  // Lines of at most 60 columns: the editor's width beside the result
  // pane on a laptop screen (playground_test.go checks them).
  var defaultQuery = [
    '# Paste your API key into the Headers tab below,',
    '# then run this query (the run button, or Ctrl-Enter).',
    '#',
    '# Delete an upload with:',
    '#   mutation {',
    '#     deleteUpload(id: "upl_...") {',
    '#       deletedUploadId',
    '#       message',
    '#     }',
    '#   }',
    '#',
    '# Watch your uploads change, live, with:',
    '#   subscription {',
    '#     uploadEvents { id kind uploadId createdAt }',
    '#   }',
    'query MyUploads {',
    '  viewer {',
    '    email',
    '    uploads(',
    '      first: 20',
    '      orderBy: { field: CREATED_AT, direction: DESC }',
    '    ) {',
    '      totalCount',
    '      edges { node { id filename size status createdAt } }',
    '    }',
    '  }',
    '}',
    '',
  ].join('\n');
  // Subscriptions go over a WebSocket (graphql-transport-ws, with the
  // bundled graphql-ws client); the Headers tab becomes its
  // connection_init payload, which is where the server reads the key.
  var endpoint = new URL('/graphql', window.location.href);
  var subscriptionUrl = new URL(endpoint);
  subscriptionUrl.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: endpoint.toString(),
    subscriptionUrl: subscriptionUrl.toString(),
  });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      headers: JSON.stringify({ 'x-api-key': '' }, null, 2),
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false, // an API key is a secret: keep it out of localStorage
    })
  );
})();
