"""Field tables (JSON names and types, the format of protobuf_schema.MESSAGES) of the kinds served
without a protobuf form: the Gateway API v1 standard channel (v1.2: GatewayClass, Gateway,
HTTPRoute, as their CRDs' structural schemas declare them) and networking.k8s.io/v1 IngressClass.
Strict field validation (`kubectl apply --validate=strict`) checks bodies against them."""

from __future__ import annotations


def _fields(*pairs: tuple[str, str]) -> dict[int, tuple[str, str]]:
    return dict(enumerate(pairs, 1))


_OBJECT = (("metadata", "meta.ObjectMeta"),)
_GROUP_KIND = _fields(("group", "s"), ("kind", "s"))
_HEADER_MODIFIER = _fields(("set", "gw.HTTPHeader*"), ("add", "gw.HTTPHeader*"), ("remove", "s*"))
_PATH_MODIFIER = _fields(("type", "s"), ("replaceFullPath", "s"), ("replacePrefixMatch", "s"))

MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "net.IngressClass": _fields(*_OBJECT, ("spec", "net.IngressClassSpec")),
    "net.IngressClassSpec": _fields(
        ("controller", "s"), ("parameters", "net.IngressClassParametersReference")
    ),
    "net.IngressClassParametersReference": _fields(
        ("apiGroup", "s"), ("kind", "s"), ("name", "s"), ("scope", "s"), ("namespace", "s")
    ),
    "gw.GatewayClass": _fields(
        *_OBJECT, ("spec", "gw.GatewayClassSpec"), ("status", "gw.GatewayClassStatus")
    ),
    "gw.GatewayClassSpec": _fields(
        ("controllerName", "s"), ("parametersRef", "gw.ParametersReference"), ("description", "s")
    ),
    "gw.ParametersReference": _fields(("group", "s"), ("kind", "s"), ("name", "s"), ("namespace", "s")),
    "gw.GatewayClassStatus": _fields(("conditions", "meta.Condition*"), ("supportedFeatures", "gw.Feature*")),
    "gw.Feature": _fields(("name", "s")),
    "gw.Gateway": _fields(*_OBJECT, ("spec", "gw.GatewaySpec"), ("status", "gw.GatewayStatus")),
    "gw.GatewaySpec": _fields(
        ("gatewayClassName", "s"),
        ("listeners", "gw.Listener*"),
        ("addresses", "gw.GatewayAddress*"),
        ("infrastructure", "gw.GatewayInfrastructure"),
    ),
    "gw.GatewayAddress": _fields(("type", "s"), ("value", "s")),
    "gw.GatewayInfrastructure": _fields(
        ("labels", "map:s"), ("annotations", "map:s"), ("parametersRef", "gw.LocalParametersReference")
    ),
    "gw.LocalParametersReference": _fields(("group", "s"), ("kind", "s"), ("name", "s")),
    "gw.Listener": _fields(
        ("name", "s"),
        ("hostname", "s"),
        ("port", "i"),
        ("protocol", "s"),
        ("tls", "gw.GatewayTLSConfig"),
        ("allowedRoutes", "gw.AllowedRoutes"),
    ),
    "gw.GatewayTLSConfig": _fields(
        ("mode", "s"), ("certificateRefs", "gw.SecretObjectReference*"), ("options", "map:s")
    ),
    "gw.SecretObjectReference": _fields(("group", "s"), ("kind", "s"), ("name", "s"), ("namespace", "s")),
    "gw.AllowedRoutes": _fields(("namespaces", "gw.RouteNamespaces"), ("kinds", "gw.RouteGroupKind*")),
    "gw.RouteNamespaces": _fields(("from", "s"), ("selector", "meta.LabelSelector")),
    "gw.RouteGroupKind": _GROUP_KIND,
    "gw.GatewayStatus": _fields(
        ("addresses", "gw.GatewayAddress*"),
        ("conditions", "meta.Condition*"),
        ("listeners", "gw.ListenerStatus*"),
    ),
    "gw.ListenerStatus": _fields(
        ("name", "s"),
        ("supportedKinds", "gw.RouteGroupKind*"),
        ("attachedRoutes", "i"),
        ("conditions", "meta.Condition*"),
    ),
    "gw.HTTPRoute": _fields(*_OBJECT, ("spec", "gw.HTTPRouteSpec"), ("status", "gw.RouteStatus")),
    "gw.HTTPRouteSpec": _fields(
        ("parentRefs", "gw.ParentReference*"), ("hostnames", "s*"), ("rules", "gw.HTTPRouteRule*")
    ),
    "gw.ParentReference": _fields(
        ("group", "s"), ("kind", "s"), ("namespace", "s"), ("name", "s"), ("sectionName", "s"), ("port", "i")
    ),
    "gw.HTTPRouteRule": _fields(
        ("matches", "gw.HTTPRouteMatch*"),
        ("filters", "gw.HTTPRouteFilter*"),
        ("backendRefs", "gw.HTTPBackendRef*"),
        ("timeouts", "gw.HTTPRouteTimeouts"),
    ),
    "gw.HTTPRouteMatch": _fields(
        ("path", "gw.HTTPPathMatch"),
        ("headers", "gw.HTTPHeaderMatch*"),
        ("queryParams", "gw.HTTPQueryParamMatch*"),
        ("method", "s"),
    ),
    "gw.HTTPPathMatch": _fields(("type", "s"), ("value", "s")),
    "gw.HTTPHeaderMatch": _fields(("type", "s"), ("name", "s"), ("value", "s")),
    "gw.HTTPQueryParamMatch": _fields(("type", "s"), ("name", "s"), ("value", "s")),
    "gw.HTTPHeader": _fields(("name", "s"), ("value", "s")),
    "gw.HTTPRouteFilter": _fields(
        ("type", "s"),
        ("requestHeaderModifier", "gw.HTTPHeaderFilter"),
        ("responseHeaderModifier", "gw.HTTPHeaderFilter"),
        ("requestMirror", "gw.HTTPRequestMirrorFilter"),
        ("requestRedirect", "gw.HTTPRequestRedirectFilter"),
        ("urlRewrite", "gw.HTTPURLRewriteFilter"),
        ("extensionRef", "gw.LocalObjectReference"),
    ),
    "gw.HTTPHeaderFilter": _HEADER_MODIFIER,
    "gw.HTTPRequestMirrorFilter": _fields(("backendRef", "gw.BackendObjectReference")),
    "gw.HTTPRequestRedirectFilter": _fields(
        ("scheme", "s"),
        ("hostname", "s"),
        ("path", "gw.HTTPPathModifier"),
        ("port", "i"),
        ("statusCode", "i"),
    ),
    "gw.HTTPURLRewriteFilter": _fields(("hostname", "s"), ("path", "gw.HTTPPathModifier")),
    "gw.HTTPPathModifier": _PATH_MODIFIER,
    "gw.LocalObjectReference": _fields(("group", "s"), ("kind", "s"), ("name", "s")),
    "gw.BackendObjectReference": _fields(
        ("group", "s"), ("kind", "s"), ("name", "s"), ("namespace", "s"), ("port", "i")
    ),
    "gw.HTTPBackendRef": _fields(
        ("group", "s"),
        ("kind", "s"),
        ("name", "s"),
        ("namespace", "s"),
        ("port", "i"),
        ("weight", "i"),
        ("filters", "gw.HTTPRouteFilter*"),
    ),
    "gw.HTTPRouteTimeouts": _fields(("request", "s"), ("backendRequest", "s")),
    "gw.RouteStatus": _fields(("parents", "gw.RouteParentStatus*")),
    "gw.RouteParentStatus": _fields(
        ("parentRef", "gw.ParentReference"), ("controllerName", "s"), ("conditions", "meta.Condition*")
    ),
}
