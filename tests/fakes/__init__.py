"""Small, honest local fakes of the services routerbot talks to, served over real loopback HTTP."""
