@_exported import SLATCore
