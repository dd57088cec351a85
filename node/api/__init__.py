"""The node's HTTP API: routes, request parsing, JSON views, the block event
stream and the OpenAPI document.

It sees the node only through `facade.NodeFacade` (implemented by
node.service.NodeService), so it can be tested against a small fake and never
reaches into the node's core, store or transport.
"""
