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
  var fetcher = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).toString() });
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
