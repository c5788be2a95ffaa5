"""What Azure returns for the outputs the Azure component reads, for mocked runs.

Mocks echo inputs only; Azure computes names, FQDNs, principal ids and secret URIs.
These values follow Azure's formats so tests see what a real deployment would wire.
"""

from __future__ import annotations

from typing import Any

import pulumi

# The input that carries each resource's Azure name (the ``name`` output).
NAME_INPUT = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:network:VirtualNetwork": "virtualNetworkName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:network:NetworkSecurityGroup": "networkSecurityGroupName",
    "azure-native:network:PublicIPAddress": "publicIpAddressName",
    "azure-native:network:ApplicationGateway": "applicationGatewayName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:keyvault:Secret": "secretName",
    "azure-native:dbforpostgresql:Server": "serverName",
    "azure-native:dbforpostgresql:Database": "databaseName",
    "azure-native:privatedns:PrivateZone": "privateZoneName",
    "azure-native:app:ManagedEnvironment": "environmentName",
    "azure-native:app:ContainerApp": "containerAppName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
}

TENANT_ID = "00000000-0000-0000-0000-00000000007e"
ENV_DEFAULT_DOMAIN = "kindrock-1a2b3c4d.westeurope.azurecontainerapps.io"
ENV_STATIC_IP = "10.60.2.200"


def azure_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    inputs = args.inputs
    out: dict[str, Any] = {}
    if args.typ in NAME_INPUT:
        out["name"] = inputs.get(NAME_INPUT[args.typ])
    identity = inputs.get("identity")
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
        # Requests list identity ids; responses map each id to its principal.
        ids = identity["userAssignedIdentities"]
        out["identity"] = {**identity, "userAssignedIdentities": {i: {"principalId": f"principal-of-{i}"} for i in ids}}
    if args.typ == "random:index/randomString:RandomString":
        out["result"] = "q7x2k9"[: int(inputs["length"])]
    elif args.typ == "random:index/randomPassword:RandomPassword":
        out["result"] = "S3cret-generated-password-value!"
    elif args.typ == "azure-native:managedidentity:UserAssignedIdentity":
        out |= {"principalId": f"principal-of-{args.name}", "clientId": f"client-of-{args.name}", "tenantId": TENANT_ID}
    elif args.typ == "azure-native:keyvault:Vault":
        out["properties"] = {**inputs["properties"], "vaultUri": f"https://{inputs['vaultName']}.vault.azure.net/"}
    elif args.typ == "azure-native:keyvault:Secret":
        uri = f"https://{inputs['vaultName']}.vault.azure.net/secrets/{inputs['secretName']}"
        out["properties"] = {"secretUri": uri, "contentType": inputs["properties"].get("contentType")}
    elif args.typ == "azure-native:network:PublicIPAddress":
        label = inputs["dnsSettings"]["domainNameLabel"]
        out |= {
            "ipAddress": "20.1.2.3",
            "dnsSettings": {"domainNameLabel": label, "fqdn": f"{label}.westeurope.cloudapp.azure.com"},
        }
    elif args.typ == "azure-native:dbforpostgresql:Server":
        out["fullyQualifiedDomainName"] = f"{inputs['serverName']}.postgres.database.azure.com"
    elif args.typ == "azure-native:app:ManagedEnvironment":
        out |= {"defaultDomain": ENV_DEFAULT_DOMAIN, "staticIp": ENV_STATIC_IP}
    return out
