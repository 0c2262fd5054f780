module privacypass.example/privacypass

go 1.19
